"""Which API key scope each RPC needs, and checking a call's ``authorization: Bearer`` key.

| scope      | grants                                                                  |
| ---------- | ----------------------------------------------------------------------- |
| `infer`    | InferenceService, LMService (except GetProviderStatus)                  |
| `programs` | ProgramService                                                          |
| `jobs`     | DatasetService, EvaluationService, OptimizationService                  |
| `admin`    | everything, including LMService.GetProviderStatus, BudgetService, the dashboard |

Health checks and reflection need no key when configured open (the default); otherwise any valid
key will do. Methods not listed need ``admin`` (deny by default).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..app.auth import ApiKeys
from ..core.caller import Caller
from ..core.errors import PermissionDenied, Unauthenticated

PACKAGE = "dspy_grpc.v1"

#: Scope per service (``package.Service``), then per full method (``/package.Service/Method``).
SERVICE_SCOPES: dict[str, str] = {
    f"{PACKAGE}.InferenceService": "infer",
    f"{PACKAGE}.LMService": "infer",
    f"{PACKAGE}.ProgramService": "programs",
    f"{PACKAGE}.DatasetService": "jobs",
    f"{PACKAGE}.EvaluationService": "jobs",
    f"{PACKAGE}.OptimizationService": "jobs",
}
METHOD_SCOPES: dict[str, str] = {
    f"/{PACKAGE}.LMService/GetProviderStatus": "admin",
}
HEALTH_SERVICES = ("grpc.health.v1.Health",)
REFLECTION_SERVICES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")

#: Scope needed for a method that only needs *some* valid key.
ANY_KEY = ""


def required_scope(method: str) -> str:
    """The scope ``method`` (``/package.Service/Method``) needs."""

    if method in METHOD_SCOPES:
        return METHOD_SCOPES[method]
    service = method.lstrip("/").partition("/")[0]
    if service in HEALTH_SERVICES or service in REFLECTION_SERVICES:
        return ANY_KEY
    return SERVICE_SCOPES.get(service, "admin")


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The key of an ``authorization: Bearer <key>`` entry; :class:`Unauthenticated` if absent."""

    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("the authorization metadata must be 'Bearer <API key>'", reason="API_KEY_INVALID")
    raise Unauthenticated("this server needs an API key: send 'authorization: Bearer <API key>' metadata",
                          reason="API_KEY_MISSING")


class Authorizer:
    """Checks calls against :class:`ApiKeys`; ``keys=None`` turns authentication off."""

    def __init__(self, keys: ApiKeys | None, *, open_health: bool = True, open_reflection: bool = True) -> None:
        self.keys = keys
        self._open = tuple(
            (HEALTH_SERVICES if open_health else ()) + (REFLECTION_SERVICES if open_reflection else ())
        )

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None, scope: str) -> Caller | None:
        """The caller, checked for ``scope`` (``""``: any valid key). ``None`` when auth is off."""

        if self.keys is None:
            return None
        caller = await self.keys.authenticate(bearer_token(metadata))
        if scope and not caller.allows(scope):
            raise PermissionDenied(
                f"API key {caller.key_id} ({caller.name}) lacks the {scope!r} scope this call needs",
                reason="SCOPE_MISSING", metadata={"required_scope": scope, "key_id": caller.key_id},
            )
        return caller

    async def authorize(self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None) -> Caller | None:
        """The caller of ``method``; raises Unauthenticated / PermissionDenied. ``None``: no key needed."""

        if self.keys is None or method.lstrip("/").partition("/")[0] in self._open:
            return None
        return await self.authenticate(metadata, required_scope(method))
