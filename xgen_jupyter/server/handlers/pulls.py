"""Pulls: start one (202, runs in the background), list them, follow one; progress also streams on
the events websocket as ``{"kind": "pull", "job": {...}}``."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...core.errors import RequestError
from ...core.models.pull_jobs import PullJobs
from .base import XGenHandler


def pull_jobs(settings: dict[str, Any]) -> PullJobs:
    """The extension's one PullJobs (made on first use), pulling into the core's model folders."""
    jobs = settings.get("xgen_pulls")
    if jobs is None:
        cfg = settings["xgen_core"].config
        jobs = settings["xgen_pulls"] = PullJobs(list(cfg.model_dirs), cfg.shared_dir)
    return jobs


class PullsHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"pulls": pull_jobs(self.settings).list()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        spec = body.get("model")
        if not isinstance(spec, str):
            raise RequestError('"model" must be a string: REPO[:QUANT or FILE]',
                               'e.g. {"model": "unsloth/gemma-3-270m-it-GGUF:Q4_K_M"}')  # fmt: skip
        self.reply(pull_jobs(self.settings).start(spec), status=202)  # a bad spec: 400 before any thread


class PullHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        found = pull_jobs(self.settings).get(job)
        if found is None:
            raise web.HTTPError(404, f"No pull with id {job!r} (GET xgen/api/pulls lists them)")
        self.reply(found)
