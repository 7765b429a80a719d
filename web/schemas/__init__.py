"""The API's payloads: msgspec structs, validated on the way in and encoded on the way out.

Kept apart from the ORM models: a handler maps rows to these, so the wire format changes only
on purpose and never leaks a column."""
