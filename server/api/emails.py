"""Email to buyers (docs/api.md 16): what the outbox holds for the merchant's orders."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.emails import Email, EmailList, EmailListQuery
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import query_args
from flint.mail import service

bp = Blueprint("emails", __name__, url_prefix="/v1/emails")


@bp.get("")
@operation("listEmails", "Emails")
@scope("orders:read")
@document_response(EmailList)
@query_args(EmailListQuery)
async def get_emails(query: EmailListQuery):
    """List emails to buyers (sent, waiting or given up), newest first; ``order`` narrows to one order's."""
    emails, has_more = await service.list_emails(runtime(), principal().merchant_id, order_id=query.order,
                                                 limit=query.limit, starting_after=query.starting_after)
    return page(emails, has_more)


@bp.get("/<email_id>")
@operation("retrieveEmail", "Emails")
@scope("orders:read")
@document_response(Email)
async def get_email(email_id: str):
    """Retrieve an email to a buyer."""
    return (await service.get_email(runtime(), principal().merchant_id, email_id)).to_dict()
