"""The tailnet side of blumeops: ACL policy, device tags, Tailscale Services."""

from components.tailnet.tailnet import DeviceTagging, Tailnet, TailnetArgs, TailscaleService

__all__ = ["DeviceTagging", "Tailnet", "TailnetArgs", "TailscaleService"]
