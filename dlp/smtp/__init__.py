"""The SMTP relay: receive mail (aiosmtpd), scan it, then deliver, reject or quarantine it."""
