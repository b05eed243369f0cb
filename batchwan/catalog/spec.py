"""What one Wan model takes: the frozen ``ModelSpec`` that every stage reads its limits from.

Data only, no I/O. The numbers shared by every model (image and audio limits, seed range,
negative prompt length, the size tiers of the text models) live here once; each model's own
choices live in its entry in ``batchwan.catalog.models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType

MB = 1_000_000  # "10 MB" read as 10**7 bytes: the smaller reading, so either one is met


class Kind(StrEnum):
    """What a model makes a video from."""

    IMAGE_TO_VIDEO = "image-to-video"
    FIRST_AND_LAST_FRAME = "first-and-last-frame"
    TEXT_TO_VIDEO = "text-to-video"


class Frame(StrEnum):
    """Whether a model takes a `last_frame` image."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class ImageLimits:
    """What an input image (first or last frame) must be."""

    #: Pillow's format names the API takes (MPO is a camera JPEG with extra frames).
    formats: tuple[str, ...] = ("JPEG", "MPO", "PNG", "BMP", "WEBP")
    min_side: int = 360
    max_side: int = 2000
    max_bytes: int = 10 * MB
    transparency: bool = False  # PNG with transparent pixels is refused

    def describe_bytes(self) -> str:
        """The byte limit as the API's pages write it: ``10 MB``."""
        return f"{self.max_bytes // MB} MB"


@dataclass(frozen=True)
class AudioLimits:
    """What an `audio_url` file must be."""

    formats: tuple[str, ...] = ("WAV", "MP3")
    min_seconds: float = 3.0
    max_seconds: float = 30.0
    max_bytes: int = 15 * MB

    def describe_bytes(self) -> str:
        """The byte limit as the API's pages write it: ``15 MB``."""
        return f"{self.max_bytes // MB} MB"


IMAGE_LIMITS = ImageLimits()
AUDIO_LIMITS = AudioLimits()
SEED_MAX = 2147483647
NEGATIVE_PROMPT_MAX = 500

#: The `size` values of each resolution tier of the text models; the first is the landscape one
#: that a sheet saying `720P` on a text model means.
SIZE_TIERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "480P": ("832*480", "480*832", "624*624"),
        "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
        "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
    }
)
#: Every resolution tier of any model, smallest first.
TIERS: tuple[str, ...] = tuple(SIZE_TIERS)

#: Every create field of any model, in the order a body lists them.
ALL_FIELDS: tuple[str, ...] = (
    "prompt",
    "image",
    "last_frame",
    "negative_prompt",
    "audio",
    "audio_url",
    "resolution",
    "size",
    "duration",
    "shot_type",
    "template",
    "prompt_extend",
    "seed",
    "safety_filter",
)
SHOT_TYPES: tuple[str, ...] = ("single", "multi")
#: Fields every model takes, whatever its kind.
_COMMON = ("prompt", "negative_prompt", "prompt_extend", "seed", "safety_filter")


def tier_of_size(size: str) -> str | None:
    """The resolution tier a `W*H` size belongs to, None when it is in none."""
    for tier, sizes in SIZE_TIERS.items():
        if size in sizes:
            return tier
    return None


# eq=False: a spec is one registry entry, compared and hashed by identity (its prices are a dict).
@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One Wan model: its path, the fields it takes, their limits and defaults, its prices."""

    name: str
    vendor: str  # "alibaba", or "mulerouter" for MuleRouter's own fine-tunes
    kind: Kind
    prompt_max: int
    resolutions: tuple[str, ...]  # tiers; a text model's sizes are those tiers' sizes
    default_resolution: str
    durations: tuple[int, ...]
    default_duration: int
    audio: bool  # takes `audio` and `audio_url` (generates sound)
    #: USD per second of video by tier; None where no price is known.
    prices: Mapping[str, float | None]
    shot_type: bool = False
    template: bool = False
    last_frame: Frame = Frame.NONE
    negative_prompt_max: int = NEGATIVE_PROMPT_MAX
    image: ImageLimits = IMAGE_LIMITS
    audio_limits: AudioLimits = AUDIO_LIMITS
    seed_max: int = SEED_MAX
    #: Values that only some sources list, with the doubt to say when a row uses one.
    doubtful: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"{self.name}: default resolution is not one of its resolutions")
        if self.default_duration not in self.durations:
            raise ValueError(f"{self.name}: default duration is not one of its durations")
        if unknown := set(self.resolutions) - set(TIERS):
            raise ValueError(f"{self.name}: unknown resolution tiers {sorted(unknown)}")
        if set(self.prices) != set(self.resolutions):
            raise ValueError(f"{self.name}: prices must name exactly its resolutions")
        if self.kind is Kind.FIRST_AND_LAST_FRAME and self.last_frame is not Frame.REQUIRED:
            raise ValueError(f"{self.name}: a first-and-last-frame model requires last_frame")
        if self.kind is Kind.TEXT_TO_VIDEO and self.last_frame is not Frame.NONE:
            raise ValueError(f"{self.name}: a text-to-video model takes no frames")

    @property
    def path(self) -> str:
        """The create path; a task's status is this path plus ``/{task_id}``."""
        return f"/vendors/{self.vendor}/v1/{self.name}/generation"

    @property
    def takes_image(self) -> bool:
        """True when the model starts from an `image` (first frame)."""
        return self.kind is not Kind.TEXT_TO_VIDEO

    @property
    def uses_size(self) -> bool:
        """True when the output is chosen by `size` (``W*H``) rather than `resolution`."""
        return self.kind is Kind.TEXT_TO_VIDEO

    @cached_property
    def sizes(self) -> tuple[str, ...]:
        """The `size` values a text model takes (empty for the others)."""
        if not self.uses_size:
            return ()
        return tuple(size for tier in self.resolutions for size in SIZE_TIERS[tier])

    @property
    def default_size(self) -> str | None:
        """The size a text model renders when none is given: its default tier's landscape."""
        return SIZE_TIERS[self.default_resolution][0] if self.uses_size else None

    @cached_property  # read for every cell of every row
    def fields(self) -> tuple[str, ...]:
        """The create fields this model takes, in body order."""
        taken = set(_COMMON)
        taken.add("size" if self.uses_size else "resolution")
        taken.add("duration")
        if self.takes_image:
            taken.add("image")
        if self.last_frame is not Frame.NONE:
            taken.add("last_frame")
        if self.audio:
            taken.update(("audio", "audio_url"))
        if self.shot_type:
            taken.add("shot_type")
        if self.template:
            taken.add("template")
        return tuple(name for name in ALL_FIELDS if name in taken)

    def price(self, resolution: str) -> float | None:
        """USD per second at a tier, None when unknown (or not a tier of this model)."""
        return self.prices.get(resolution)
