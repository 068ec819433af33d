"""Fakes for peers that cannot run here (providers' REST APIs), speaking their documented wire format."""
