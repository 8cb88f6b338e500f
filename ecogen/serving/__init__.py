"""Split inference as a service: the edge answers a client's image through its device chain, and
keeps recent answers so that a repeated request never reaches the devices."""
