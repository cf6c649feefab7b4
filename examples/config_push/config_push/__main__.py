"""``python -m config_push``: push a sample configuration to simulated devices, then flush the metrics.

Metrics go where the environment says (``DD_AGENT_HOST`` / ``DD_DOGSTATSD_PORT``,
see netauto_statsd.config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config_push.push import Device, push_batch
from netauto_statsd import flush


def main(argv: Sequence[str] | None = None) -> int:
    """Run one batch; exit 0 when every device that should accept did."""
    parser = argparse.ArgumentParser(prog="config_push", description=__doc__)
    parser.add_argument("--devices", type=int, default=6, help="devices per site (default 6)")
    parser.add_argument("--sites", default="par1,lon2", help="comma-separated sites (default par1,lon2)")
    parser.add_argument("--refusing", type=int, default=1, help="devices per site that refuse (default 1)")
    args = parser.parse_args(argv)
    if args.devices < 1 or not 0 <= args.refusing <= args.devices:
        parser.error("need --devices >= 1 and 0 <= --refusing <= --devices")
    devices = [
        Device(f"{site}-sw{i}", site, latency=0.005 * (1 + i % 4), refuses=i < args.refusing)
        for site in args.sites.split(",")
        for i in range(args.devices)
    ]
    refused: list[str] = []
    done = push_batch(devices, "hostname {name}\nntp server 10.0.0.1\n", lambda d, _: refused.append(d.name))
    flush()
    print(f"pushed {done}/{len(devices)}; refused: {', '.join(refused) or 'none'}")
    return 0 if done == len(devices) - len(refused) else 1


if __name__ == "__main__":
    sys.exit(main())
