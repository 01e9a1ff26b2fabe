DROP TABLE team_leases;
