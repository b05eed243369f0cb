"""The pool: submit within the provider's limits, follow every task, download."""
