"""The deprovisioning function: Cognito admin calls (CloudTrail via EventBridge) and the scheduled backstop."""
