"""The project's one exception for mistakes a user can fix.

Every message names the bad value and says what to do instead; the CLI prints it as a
single line on stderr and exits with code 2 (see ``search.cli``).
"""


class UserError(Exception):
    """A bad value from the user (flag, config file, storage URL, data path)."""
