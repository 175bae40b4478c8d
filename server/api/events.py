"""Events: what happened, newest first."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.events import Event, EventList, EventListQuery
from flint.events import service
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import query_args

bp = Blueprint("events", __name__, url_prefix="/v1/events")


@bp.get("")
@operation("listEvents", "Events")
@scope("events:read")
@document_response(EventList)
@query_args(EventListQuery)
async def get_events(query: EventListQuery):
    """List events, newest first, optionally of one type."""
    me = principal()
    events, has_more = await service.list_events(runtime(), me.merchant_id, query.type, query.limit,
                                                 query.starting_after, service.readable_types(me.scopes))
    return page(events, has_more)


@bp.get("/<event_id>")
@operation("retrieveEvent", "Events")
@scope("events:read")
@document_response(Event)
async def get_event(event_id: str):
    """Retrieve an event."""
    me = principal()
    return (await service.get_event(runtime(), me.merchant_id, event_id, service.readable_types(me.scopes))).to_dict()
