"""The merchant account: embed origins and rolling secret keys."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.merchant import ApiKey, ApiKeyList, Merchant, UpdateMerchantRequest
from flint.http.auth import merchant_only, principal
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body
from flint.merchants import service

bp = Blueprint("merchants", __name__, url_prefix="/v1/merchant")


@bp.get("")
@operation("retrieveMerchant", "Merchant")
@merchant_only
@document_response(Merchant)
async def get_merchant():
    """Retrieve the merchant this key belongs to."""
    return (await service.get_merchant(runtime(), principal().merchant_id)).to_dict()


@bp.post("")
@operation("updateMerchant", "Merchant")
@merchant_only
@document_response(Merchant)
@json_body(UpdateMerchantRequest)
async def post_merchant(body: UpdateMerchantRequest):
    """Update the merchant: the exact origins allowed to embed the widget, the hosted pages' colour,
    whether buyers get an emailed receipt."""
    me = principal()
    return (await service.update_merchant(runtime(), me.merchant_id, origins=body.allowed_origins,
                                          brand_color=body.brand_color, receipts=body.receipts,
                                          actor=me.actor)).to_dict()


@bp.get("/keys")
@operation("listApiKeys", "Merchant")
@merchant_only
@document_response(ApiKeyList)
async def get_keys():
    """List secret keys (never their values)."""
    keys = await service.list_keys(runtime(), principal().merchant_id)
    return page(keys, False)


@bp.post("/keys")
@operation("createApiKey", "Merchant")
@merchant_only
@document_response(ApiKey)
@no_body
async def post_key():
    """Create a secret key. Its value is in this response only."""
    me = principal()
    key, secret = await service.create_key(runtime(), me.merchant_id, me.actor)
    return key.to_dict(secret)


@bp.delete("/keys/<key_id>")
@operation("deleteApiKey", "Merchant")
@merchant_only
@document_response(ApiKey)
async def delete_key(key_id: str):
    """Revoke a secret key at once. The last live key cannot be revoked."""
    me = principal()
    return (await service.revoke_key(runtime(), me.merchant_id, key_id, me.actor)).to_dict()
