"""Amazon Cognito: the hosted OAuth endpoints, the gateway client's secret, KMS cipher, JWT verification."""
