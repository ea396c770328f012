"""Reports: what the exchange's leads did, grouped by how they arrived (channel, source), by
vertical and by day, with the money they made. Reads only; one SQL query per report."""
