"""The guard-model classifier's calls: text completions on the deployment that
``safety.guard_deployment`` names, through the resource's own inference core (so any backend
serves them, within that deployment's rate limits, metered as its usage), never screened
themselves."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from stockade.access import Principal
from stockade.backends.registry import LOCAL
from stockade.config import SafetySettings
from stockade.errors import DeploymentNotFound, ServiceError
from stockade.requests import CompletionRequest
from stockade.safety.base import Severity
from stockade.safety.classifier.errors import ClassifierUnavailable
from stockade.safety.guard import FORMATS, GuardAnswer, GuardClassifier, GuardPrompt
from stockade.safety.policy import DEFAULT
from stockade.safety.screen import Screen
from stockade.store import Deployment
from stockade.telemetry import Call

if TYPE_CHECKING:
    from stockade.core.resource import Resource

# Whom the guard's calls are metered under; inference itself checks no grants.
GUARD = Principal(id="guard", name="guard-model classifier", grants=())
# The guard's own calls run no filter: screening them would call the guard again, without end.
UNSCREENED = Screen(DEFAULT, [], None, None)


class GuardDeployment:
    """The guard classifier's ``complete``: one prompt, one text completion on the deployment."""

    def __init__(self, name: str, resource: Resource) -> None:
        self.name = name
        self.resource = resource

    async def __call__(self, prompt: GuardPrompt) -> GuardAnswer:
        deployment = self._deployment()
        call = Call(uuid.uuid4().hex, "Completions_Create", deployment=deployment.name,
                    model=deployment.model, key_id=GUARD.id)
        # Local models return no log probabilities (and refuse to be asked for them).
        logprobs = prompt.top_logprobs if prompt.top_logprobs and deployment.backend != LOCAL else None
        request = CompletionRequest(
            prompt=prompt.text, max_tokens=prompt.max_tokens, temperature=0, logprobs=logprobs
        )
        status = 500
        try:
            answer = await self.resource.inference.generate(deployment, request, call, GUARD, UNSCREENED)
            status = 200
        except ServiceError as error:
            status = error.status
            raise
        finally:
            self.resource.usage.add(call.record(status))
        assert isinstance(answer.content, dict), "a request that does not stream is answered whole"
        return _answer(answer.content)

    def _deployment(self) -> Deployment:
        try:
            return self.resource.deployment(self.name)
        except DeploymentNotFound:
            raise ClassifierUnavailable(
                f"The guard model's deployment {self.name!r}, named by the setting "
                "safety.guard_deployment, does not exist. Create it (`stockade deployments create "
                f"--name {self.name} --model GUARD_MODEL`) or set safety.guard_deployment to one that does."
            ) from None


def _answer(body: dict[str, Any]) -> GuardAnswer:
    choice = body["choices"][0]
    logprobs = choice.get("logprobs")
    top = logprobs.get("top_logprobs") if isinstance(logprobs, dict) else None
    first = top[0] if isinstance(top, list) and top and isinstance(top[0], dict) else None
    if first is not None and not all(isinstance(v, int | float) for v in first.values()):
        first = None
    return GuardAnswer(choice["text"], first)


def guard_classifier(settings: SafetySettings, resource: Resource) -> GuardClassifier:
    assert settings.guard_deployment is not None, "the settings require it with classifier guard"
    return GuardClassifier(
        FORMATS[settings.guard_format],
        GuardDeployment(settings.guard_deployment, resource),
        timeout=settings.guard_timeout,
        unsafe=Severity[settings.guard_unsafe_severity.upper()],
    )
