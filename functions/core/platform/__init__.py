"""Platform: settings, routes, HTTP event parsing, AWS clients, DynamoDB helpers, errors, observability."""
