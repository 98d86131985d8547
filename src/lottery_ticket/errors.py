"""One exception type for every problem a user can fix.

The CLI prints these as a single line (no traceback) and exits non-zero, so each message
names the bad value and says how to fix it.
"""


class LotteryTicketError(ValueError):
    """A user-fixable problem: bad input, missing or corrupt files, mismatched shapes."""
