"""Installation of a cooperative's site on its own domain (J6–J7): the installation key, the council, invitations,
the council's signatures of the regulations, activation."""
