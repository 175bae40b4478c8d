"""HTTP plumbing shared by every blueprint: auth declarations, body and query validation,
JSON and list responses. Business rules never live here."""
