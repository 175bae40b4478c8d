"""Request and response models of the JSON API, one module per resource (pydantic: they validate the
requests and document both in /v1/openapi.json)."""
