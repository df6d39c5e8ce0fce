"""``tolk temporal setup``: make a Temporal cluster ready for Tolk, idempotently.

The dev server that ``tolk dev`` starts is given its namespace and Tolk's custom search
attributes on its command line (``stack.py``). A self-hosted cluster is not: this command
registers the namespace when it is missing and adds each search attribute of
``temporal.search_attributes`` that the namespace lacks, through the WorkflowService and
the OperatorService. Run it once per deployment (compose runs it before the API and the
workers); run again, it changes nothing. An attribute that exists with another type is an
error, never changed. Temporal Cloud does not take these calls from a namespace's
clients: there the namespace and its attributes are made with ``tcld`` or the Cloud UI,
and this command then only confirms they are there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import output

if TYPE_CHECKING:
    from settings import Settings

app = typer.Typer(help="the Temporal cluster Tolk runs on", no_args_is_help=True)

log = logging.getLogger("tolk.temporal")

# The names of temporal.search_attributes' types, as Temporal's CLI spells them.
TYPES = {
    "Text": "INDEXED_VALUE_TYPE_TEXT",
    "Keyword": "INDEXED_VALUE_TYPE_KEYWORD",
    "Int": "INDEXED_VALUE_TYPE_INT",
    "Double": "INDEXED_VALUE_TYPE_DOUBLE",
    "Bool": "INDEXED_VALUE_TYPE_BOOL",
    "Datetime": "INDEXED_VALUE_TYPE_DATETIME",
    "KeywordList": "INDEXED_VALUE_TYPE_KEYWORD_LIST",
}


class SetupError(Exception):
    """What the cluster refused or lacks, said plainly (exit status 1)."""


def wanted_types(attributes: dict[str, str]) -> dict[str, Any]:
    """``temporal.search_attributes`` as Temporal's enum values; SetupError on a type
    Temporal does not have."""
    from temporalio.api.enums.v1 import IndexedValueType

    wanted: dict[str, Any] = {}
    for name, kind in attributes.items():
        if kind not in TYPES:
            raise SetupError(
                f"temporal.search_attributes.{name}: type {kind!r} is not one of "
                + ", ".join(TYPES)
            )
        wanted[name] = IndexedValueType.Value(TYPES[kind])
    return wanted


def _type_name(value: Any) -> str:
    """A search attribute type as ``temporal.search_attributes`` spells it."""
    from temporalio.api.enums.v1 import IndexedValueType

    full = IndexedValueType.Name(value)
    return next((short for short, name in TYPES.items() if name == full), full)


async def _ensure_namespace(client: Any, namespace: str, retention_days: float) -> bool:
    """Register ``namespace`` unless it exists; True when this call registered it."""
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        RegisterNamespaceRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    request = RegisterNamespaceRequest(namespace=namespace, description="Tolk")
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=retention_days))
    try:
        await client.workflow_service.register_namespace(request)
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:  # another setup got there first
            return False
        if err.status == RPCStatusCode.PERMISSION_DENIED:
            raise SetupError(
                f"namespace {namespace} does not exist and this client may not create it "
                "(on Temporal Cloud: create it with tcld or in the Cloud UI)"
            ) from None
        raise
    return True


async def _ensure_search_attributes(
    client: Any, namespace: str, wanted: dict[str, Any], deadline: float
) -> list[str]:
    """Add the attributes of ``wanted`` that ``namespace`` lacks; their names. A namespace
    registered a moment ago is not yet known to every part of the cluster: NOT_FOUND is
    waited out until ``deadline`` (of the event loop's clock)."""
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    loop = asyncio.get_running_loop()
    while True:
        try:
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            existing = {**listed.system_attributes, **listed.custom_attributes}
            for name, kind in wanted.items():
                if name in existing and existing[name] != kind:
                    have, want = (_type_name(existing[name]), _type_name(kind))
                    raise SetupError(
                        f"search attribute {name} exists in {namespace} as {have}, not {want}"
                    )
            missing = {name: kind for name, kind in wanted.items() if name not in existing}
            if missing:
                await client.operator_service.add_search_attributes(
                    AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
                )
            return sorted(missing)
        except RPCError as err:
            if err.status == RPCStatusCode.PERMISSION_DENIED:
                raise SetupError(
                    f"this client may not add search attributes to {namespace} "
                    "(on Temporal Cloud: add them with tcld or in the Cloud UI)"
                ) from None
            if err.status != RPCStatusCode.NOT_FOUND or loop.time() >= deadline:
                raise
            await asyncio.sleep(1.0)


async def setup(settings: Settings, retention_days: float, wait_seconds: float) -> dict[str, Any]:
    """Namespace and search attributes, as ``settings`` names them; what was done."""
    from connections import connect_temporal, keep_trying

    wanted = wanted_types(settings.temporal_search_attributes)
    namespace = settings.temporal_namespace
    deadline = asyncio.get_running_loop().time() + wait_seconds
    try:
        async with asyncio.timeout(wait_seconds):
            client = await keep_trying(
                f"Temporal at {settings.temporal_target}",
                lambda: connect_temporal(settings),
                max_delay=settings.temporal_connect_retry_max_seconds,
                log=log,
            )
    except TimeoutError:
        raise SetupError(
            f"Temporal at {settings.temporal_target} did not answer within {wait_seconds:g} s"
        ) from None
    created = await _ensure_namespace(client, namespace, retention_days)
    added = await _ensure_search_attributes(client, namespace, wanted, deadline)
    return {
        "namespace": namespace,
        "namespaceCreated": created,
        "searchAttributesAdded": added,
        "searchAttributes": dict(settings.temporal_search_attributes),
    }


@app.command("setup", help="register the namespace and Tolk's search attributes (idempotent)")
def setup_command(
    retention_days: Annotated[
        float,
        typer.Option(
            "--retention-days", min=1, help="history retention of a namespace this creates"
        ),
    ] = 7,
    wait: Annotated[
        float,
        typer.Option("--wait", metavar="SECONDS", min=1, help="how long to wait for Temporal"),
    ] = 120,
    as_json: output.json_mode = False,
) -> None:
    from settings import get_settings

    try:
        result = asyncio.run(setup(get_settings(), retention_days, wait))
    except SetupError as err:
        output.fail(str(err), 1)
    if as_json:
        print(json.dumps(result))
        return
    state = "created" if result["namespaceCreated"] else "exists"
    added = ", ".join(result["searchAttributesAdded"]) or "none"
    print(f"namespace {result['namespace']}: {state}; search attributes added: {added}")
