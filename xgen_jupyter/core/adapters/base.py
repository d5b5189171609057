"""What every engine adapter provides: a command line, an environment, a readiness check, the
engine's traits for the planner, and how to find its installs on this box."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..config import CoreConfig
from ..errors import BackendUnavailable
from ..planning.backend import BackendInstall, BackendRow, EngineSettings, EngineTraits


@dataclass(frozen=True)
class Progress:
    """Loading progress parsed from an engine's log line."""

    fraction: float | None
    message: str


class BackendAdapter(ABC):
    """Turns engine-neutral settings into one engine's argv, env and health check.

    One class per engine; one registry row (``registry.py``) per backend (engine build) it runs.
    It implements the planner's ``Launcher`` protocol (``planning/backend.py``)."""

    #: The engine program, e.g. ``llama-server``.
    engine: ClassVar[str]
    #: Model formats it serves: ``gguf`` and/or ``hf``.
    formats: ClassVar[tuple[str, ...]]
    #: What the planner must know about the engine (read into each row at registration).
    traits: ClassVar[EngineTraits] = EngineTraits()
    #: Path polled until the engine answers 200.
    health_path: ClassVar[str] = "/health"
    #: Whether the health path needs the API key.
    health_needs_key: ClassVar[bool] = False
    #: Paths with live engine numbers for the status view, by name (``slots``, ``metrics``).
    stats_paths: ClassVar[dict[str, str]] = {}
    #: Environment variable the engine reads its API key from. The key travels in the
    #: environment, not on the command line, where every local user could read it in ``ps``.
    key_env_var: ClassVar[str]

    def __init__(self, install: BackendInstall) -> None:
        if not install.executable:
            raise BackendUnavailable(f"{install.backend} is not available", install.reason or None)
        self.install = install
        #: The engine binary, or the Python interpreter for Python engines.
        self.executable: str = install.executable
        #: Backend id (the registry row's), e.g. ``llama-server-vulkan``.
        self.backend = install.row.id
        #: Device kind the build targets: ``vulkan``, ``rocm``, ``cuda`` or ``cpu``.
        self.device = install.row.device
        #: Flags this build's --help lists; empty when unknown.
        self.flags = install.flags

    @classmethod
    @abstractmethod
    def discover(cls, rows: Sequence[BackendRow], config: CoreConfig) -> dict[str, BackendInstall]:
        """The installs found on this box for ``rows`` (this class's backends), by id; missing ones left out."""

    @abstractmethod
    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        """The command line without host, port and API key."""

    @abstractmethod
    def bind_args(self, host: str, port: int) -> list[str]:
        """Arguments that bind the engine to ``host:port``."""

    def key_env(self, api_key: str) -> dict[str, str]:
        """The environment that makes the engine require ``api_key``."""
        return {self.key_env_var: api_key}

    def env(self, settings: EngineSettings, gpus: tuple[int, ...]) -> dict[str, str]:
        """Extra environment variables (device visibility, quirks)."""
        return {}

    def progress(self, line: str) -> Progress | None:
        """Parse loading progress from a log line, if the line carries any."""
        return None
