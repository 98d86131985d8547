"""Where the offline datasets of this machine lie (`../shared/datasets` beside the checkout).

Searched upward from this file, so the tests find it from a checkout and from mutmut's copy of the tests
(`mutants/tests/`) alike; `LOTTERY_TICKET_SHARED_DATA` names another folder. Tests that need it skip when absent.
"""

import os
from pathlib import Path


def _find() -> Path:
    if "LOTTERY_TICKET_SHARED_DATA" in os.environ:
        return Path(os.environ["LOTTERY_TICKET_SHARED_DATA"])
    here = Path(__file__).resolve()
    found = (p / "shared" / "datasets" for p in here.parents if (p / "shared" / "datasets").is_dir())
    return next(found, here.parents[1].parent / "shared" / "datasets")


SHARED_DATASETS = _find()
