"""Webhook rules shared by the API and the delivery activity: URL safety, signing, links."""
