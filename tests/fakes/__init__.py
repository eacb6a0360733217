"""In-memory twins of the kit's DynamoDB repositories: test doubles, not shipped."""
