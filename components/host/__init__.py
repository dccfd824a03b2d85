"""The host side of blumeops: steps on a macOS host over SSH (HostStep), LaunchAgents, periodic agents, zot,
minikube, serve entries, borgmatic, the legacy import and retirements."""

from components.host.borgmatic import (
    Borgmatic,
    BorgmaticArgs,
    BorgmaticDatabase,
    BorgRepository,
    RecentBorgmaticArchive,
    Retention,
)
from components.host.check_agent import HealthCheckAgent, HealthCheckAgentArgs
from components.host.connection import Host, HostTools
from components.host.devpi_export import DevpiExport, DevpiExportArgs
from components.host.devpi_image import DevpiImage, DevpiImageArgs
from components.host.launch_agent import (
    AgentName,
    LaunchAgent,
    LaunchAgentArgs,
    PeriodicAgentArgs,
    install_file_step,
    periodic_agent,
)
from components.host.minikube import MinikubeDockerCluster, MinikubeDockerClusterArgs
from components.host.postgres_import import LegacyDatabaseImport, LegacyDatabaseImportArgs, PostgresEndpoint
from components.host.retire import (
    BrewService,
    LegacyLaunchAgent,
    LegacyServiceRetirement,
    LegacyServiceRetirementArgs,
    RetirementPrecondition,
)
from components.host.script import HostStep
from components.host.serve import TailscaleServe, TailscaleServeArgs
from components.host.transmission_move import TransmissionMove, TransmissionMoveArgs
from components.host.zot import MetricsPaths, RegistryMirror, ZotRegistry, ZotRegistryArgs

__all__ = [
    "AgentName",
    "BorgRepository",
    "Borgmatic",
    "BorgmaticArgs",
    "BorgmaticDatabase",
    "BrewService",
    "DevpiExport",
    "DevpiExportArgs",
    "DevpiImage",
    "DevpiImageArgs",
    "HealthCheckAgent",
    "HealthCheckAgentArgs",
    "Host",
    "HostStep",
    "HostTools",
    "LaunchAgent",
    "LaunchAgentArgs",
    "LegacyDatabaseImport",
    "LegacyDatabaseImportArgs",
    "LegacyLaunchAgent",
    "LegacyServiceRetirement",
    "LegacyServiceRetirementArgs",
    "MetricsPaths",
    "MinikubeDockerCluster",
    "MinikubeDockerClusterArgs",
    "PeriodicAgentArgs",
    "PostgresEndpoint",
    "RecentBorgmaticArchive",
    "RegistryMirror",
    "Retention",
    "RetirementPrecondition",
    "TailscaleServe",
    "TailscaleServeArgs",
    "TransmissionMove",
    "TransmissionMoveArgs",
    "ZotRegistry",
    "ZotRegistryArgs",
    "install_file_step",
    "periodic_agent",
]
