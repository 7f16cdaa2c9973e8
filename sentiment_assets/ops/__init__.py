"""The runtime's machinery: the instance prepared and healed, months built in-process, services supervised."""
