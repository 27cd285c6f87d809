"""`callstream image build|test`: the service image made from a locally built Debian base,
and proven by running every service from it."""
