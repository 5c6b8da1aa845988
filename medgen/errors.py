"""The one exception type users see for bad input (files, config keys, values)."""


class MedgenInputError(ValueError):
    """Bad input: the message names the file, field or key and what was expected."""
