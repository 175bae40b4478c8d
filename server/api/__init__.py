"""The JSON API surface (/v1): one thin blueprint per resource (parse, call the service, present),
and the request and response models in api/schemas/, which also make /v1/openapi.json. Business rules
never live here; the HTTP plumbing every surface shares is in flint.http."""
