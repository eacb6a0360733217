"""OAuth clients: metadata and redirect rules, Client ID Metadata Documents, the registry and its resolver."""
