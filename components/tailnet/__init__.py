"""The tailnet side of blumeops: ACL policy, device tags, Tailscale Services."""

from components.tailnet.release import TailnetNameRelease, TailnetNameReleaseArgs
from components.tailnet.tailnet import DeviceTagging, Tailnet, TailnetArgs, TailscaleService

__all__ = [
    "DeviceTagging",
    "Tailnet",
    "TailnetArgs",
    "TailnetNameRelease",
    "TailnetNameReleaseArgs",
    "TailscaleService",
]
