"""纸质票: paper ballots entered by two 计票员, checked against each other, sealed in the box."""
