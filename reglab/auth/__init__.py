"""Who may do what: certificates, htpasswd users, the token server."""
