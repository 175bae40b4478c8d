"""Single-use form tokens for plain HTML forms (hosted pages, the card frame's no-script path): signed,
bound to one subject, short-lived, spent once."""
