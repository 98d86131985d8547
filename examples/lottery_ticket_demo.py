"""The lottery-ticket demo as a script: `python examples/lottery_ticket_demo.py [--dataset cifar10 --model conv4]`.

Same as `lottery-ticket demo`: IMP with the random-reinit control, ending in the EXPERIMENT SUMMARY.
"""

import sys

from lottery_ticket.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
