"""The Docker engine: connecting, moving images, one-off containers, networks, logins, trust."""
