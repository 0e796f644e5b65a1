module villagecounsel/bench/loadgen

go 1.22
