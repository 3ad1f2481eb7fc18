// Runs table (filled in below).
