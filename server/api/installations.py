"""The merchant's installed apps (docs/api.md 10 and 12): list, read, approve a pending update, uninstall."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import ListQuery, page
from flint.api.schemas.installations import Installation, InstallationList
from flint.http.auth import merchant_only, principal
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import no_body, query_args
from flint.oauth import service

bp = Blueprint("installations", __name__, url_prefix="/v1/installations")


@bp.get("")
@operation("listInstallations", "Installations")
@merchant_only
@document_response(InstallationList)
@query_args(ListQuery)
async def get_installations(query: ListQuery):
    """The apps installed on this merchant (and uninstalled ones), newest first."""
    rows, has_more = await service.list_installations(runtime(), principal().merchant_id, query.limit,
                                                      query.starting_after)
    return page(rows, has_more)


@bp.get("/<installation_id>")
@operation("retrieveInstallation", "Installations")
@merchant_only
@document_response(Installation)
async def get_installation(installation_id: str):
    """One installation: what the merchant consented to, and any widening that waits for approval."""
    return (await service.get_installation(runtime(), principal().merchant_id, installation_id)).to_dict()


@bp.post("/<installation_id>/approve_update")
@operation("approveInstallationUpdate", "Installations")
@merchant_only
@document_response(Installation)
@no_body
async def post_approve_update(installation_id: str):
    """Approve what the app's developer widened (``pending_update``): it becomes what the app may receive
    and do. 409 ``no_pending_update`` when nothing waits."""
    me = principal()
    return (await service.approve_update(runtime(), me.merchant_id, installation_id, me.actor)).to_dict()


@bp.delete("/<installation_id>")
@operation("deleteInstallation", "Installations")
@merchant_only
@document_response(Installation)
async def delete_installation(installation_id: str):
    """Uninstall: the app's tokens stop working at once, its webhooks stop, the endpoints it made are
    deleted, `app.uninstalled` is sent."""
    me = principal()
    return (await service.uninstall(runtime(), me.merchant_id, installation_id, me.actor)).to_dict()
