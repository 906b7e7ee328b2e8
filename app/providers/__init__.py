"""Email providers' event webhooks (SES via SNS, Postmark, SendGrid, Mailgun).

Each module verifies one provider's request in that provider's own way and turns its payload
into ProviderReports; app.providers.service records them as the VERP listener records a DSN.
"""
