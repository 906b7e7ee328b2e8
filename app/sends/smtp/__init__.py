"""The SMTP wire: the Mailer protocol, its SMTP and capture implementations."""
