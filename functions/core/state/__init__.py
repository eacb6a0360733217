"""Authorization state in DynamoDB: pending requests and codes, grants, refresh tokens, consent, rate limits."""
