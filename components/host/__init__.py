"""The host side of blumeops: steps on a macOS host over SSH (HostStep), LaunchAgents, periodic agents, zot,
minikube, serve entries.

``HostScriptArgs`` and ``host_script`` are the former names of ``HostStep.register``: kept for callers that
still use them, to be dropped."""

from components.host.connection import Host, HostTools
from components.host.launch_agent import (
    AgentName,
    LaunchAgent,
    LaunchAgentArgs,
    PeriodicAgentArgs,
    install_file_step,
    periodic_agent,
)
from components.host.minikube import MinikubeDockerCluster, MinikubeDockerClusterArgs
from components.host.script import HostScriptArgs, HostStep, host_script
from components.host.serve import TailscaleServe, TailscaleServeArgs
from components.host.zot import MetricsPaths, RegistryMirror, ZotRegistry, ZotRegistryArgs

__all__ = [
    "AgentName",
    "Host",
    "HostScriptArgs",
    "HostStep",
    "HostTools",
    "LaunchAgent",
    "LaunchAgentArgs",
    "MetricsPaths",
    "MinikubeDockerCluster",
    "MinikubeDockerClusterArgs",
    "PeriodicAgentArgs",
    "RegistryMirror",
    "TailscaleServe",
    "TailscaleServeArgs",
    "ZotRegistry",
    "ZotRegistryArgs",
    "host_script",
    "install_file_step",
    "periodic_agent",
]
