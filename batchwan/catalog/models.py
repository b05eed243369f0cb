"""The Wan video models MuleRouter serves, one entry each (see the README's "Models" table).

Where the public record disagrees, the entry accepts both readings where that is safe: an
optional `last_frame` that one page lists, 1080P on wan2.2-i2v-flash (with a note on the row),
`shot_type` on wan2.6-t2v-spark. Prices are Alibaba's international list prices, USD per second
of video; a spark model costs what its base model does; wan2.2-i2v-flash has no known price
(None): the plan says so, and ``--max-cost`` keeps its rows pending until ``prices:`` names one.
Adding a model is one entry here (and its tests).
"""

from __future__ import annotations

from batchwan.catalog.spec import Frame, Kind, ModelSpec

I2V, KF2V, T2V = Kind.IMAGE_TO_VIDEO, Kind.FIRST_AND_LAST_FRAME, Kind.TEXT_TO_VIDEO

_WAN26 = {"720P": 0.10, "1080P": 0.15}
_WAN25 = {"480P": 0.05, "720P": 0.10, "1080P": 0.15}
_WAN22 = {"480P": 0.02, "1080P": 0.10}
_FLASH_1080P = (
    "1080P on wan2.2-i2v-flash is listed on one page only; the provider may refuse it "
    "(480P or 720P are sure)"
)

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "wan2.6-i2v", "alibaba", I2V, prompt_max=2000,
        resolutions=("720P", "1080P"), default_resolution="720P",
        durations=(5, 10, 15), default_duration=5, audio=True, shot_type=True,
        last_frame=Frame.OPTIONAL, prices=_WAN26,
    ),
    ModelSpec(
        "wan2.5-i2v-preview", "alibaba", I2V, prompt_max=2000,
        resolutions=("480P", "720P", "1080P"), default_resolution="720P",
        durations=(5, 10), default_duration=5, audio=True, prices=_WAN25,
    ),
    ModelSpec(
        "wan2.2-i2v-plus", "alibaba", I2V, prompt_max=800,
        resolutions=("480P", "1080P"), default_resolution="1080P",
        durations=(5,), default_duration=5, audio=False, last_frame=Frame.OPTIONAL,
        prices=_WAN22,
    ),
    ModelSpec(
        "wan2.2-i2v-flash", "alibaba", I2V, prompt_max=800,
        resolutions=("480P", "720P", "1080P"), default_resolution="720P",
        durations=(5,), default_duration=5, audio=False, template=True,
        prices={"480P": None, "720P": None, "1080P": None},
        doubtful={"1080P": _FLASH_1080P},
    ),
    ModelSpec(
        "wan2.6-i2v-spark", "mulerouter", I2V, prompt_max=2000,
        resolutions=("1080P",), default_resolution="1080P",
        durations=(5, 10, 15), default_duration=5, audio=True, shot_type=True,
        last_frame=Frame.OPTIONAL, prices={"1080P": _WAN26["1080P"]},
    ),
    ModelSpec(
        "wan2.5-i2v-spark", "mulerouter", I2V, prompt_max=2000,
        resolutions=("720P", "1080P"), default_resolution="720P",
        durations=(5, 10), default_duration=5, audio=True,
        prices={"720P": _WAN25["720P"], "1080P": _WAN25["1080P"]},
    ),
    ModelSpec(
        "wan2.1-kf2v-plus", "alibaba", KF2V, prompt_max=800,
        resolutions=("720P",), default_resolution="720P",
        durations=(5,), default_duration=5, audio=False, template=True,
        last_frame=Frame.REQUIRED, prices={"720P": 0.10},
    ),
    ModelSpec(
        "wan2.6-t2v", "alibaba", T2V, prompt_max=2000,
        resolutions=("720P", "1080P"), default_resolution="720P",
        durations=(5, 10, 15), default_duration=5, audio=True, shot_type=True, prices=_WAN26,
    ),
    ModelSpec(
        "wan2.5-t2v-preview", "alibaba", T2V, prompt_max=2000,
        resolutions=("480P", "720P", "1080P"), default_resolution="720P",
        durations=(5, 10), default_duration=5, audio=True, prices=_WAN25,
    ),
    ModelSpec(
        "wan2.2-t2v-plus", "alibaba", T2V, prompt_max=800,
        resolutions=("480P", "1080P"), default_resolution="1080P",
        durations=(5,), default_duration=5, audio=False, prices=_WAN22,
    ),
    ModelSpec(
        "wan2.6-t2v-spark", "mulerouter", T2V, prompt_max=2000,
        resolutions=("1080P",), default_resolution="1080P",
        durations=(5, 10, 15), default_duration=5, audio=True, shot_type=True,
        prices={"1080P": _WAN26["1080P"]},
    ),
)  # fmt: skip
