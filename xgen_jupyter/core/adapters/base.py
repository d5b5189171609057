"""What every engine adapter provides: a command line, an environment and a readiness check."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..planning.plan import EngineSettings


@dataclass(frozen=True)
class Progress:
    """Loading progress parsed from an engine's log line."""

    fraction: float | None
    message: str


class BackendAdapter(ABC):
    """Turns engine-neutral settings into one engine's argv, env and health check."""

    #: Backend id, e.g. ``llama-server-vulkan``.
    backend: str
    #: Model formats it serves: ``gguf`` and/or ``hf``.
    formats: tuple[str, ...]
    #: Device kind the build targets: ``vulkan``, ``rocm``, ``cuda`` or ``cpu``.
    device: str
    #: Path polled until the engine answers 200.
    health_path: str = "/health"
    #: Whether the health path needs the API key.
    health_needs_key: bool = False
    #: Paths with live engine numbers for the status view, by name (``slots``, ``metrics``).
    stats_paths: dict[str, str] = {}

    def __init__(self, executable: str) -> None:
        #: The engine binary, or the Python interpreter for Python engines.
        self.executable = executable

    @abstractmethod
    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        """The command line without host, port and API key."""

    #: Environment variable the engine reads its API key from. The key travels in the
    #: environment, not on the command line, where every local user could read it in ``ps``.
    key_env_var: str

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
