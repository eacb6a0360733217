"""Shared core of the kit's Lambda functions.

Nothing in here knows about API Gateway or HTTP frameworks: handlers in the function
packages parse the event, call into core, and shape the response.
"""
