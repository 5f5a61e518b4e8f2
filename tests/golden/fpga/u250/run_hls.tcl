# vitis_hls script for board u250 (xcu250-figd2104-2L-e); written by spikeforge.
# Run: vitis_hls -f run_hls.tcl [-tclargs csim csynth cosim export]
#  or: vitis-run --mode hls --tcl run_hls.tcl
set steps {csim csynth cosim export}
if {[info exists argv] && [llength $argv] > 0} { set steps $argv }
open_project -reset sf_hls
set_top sf_top
add_files sf_top.cpp -cflags "-std=gnu++14 -I./include"
add_files -tb sf_tb.cpp -cflags "-std=gnu++14 -I./include"
open_solution -reset solution1 -flow_target vitis
set_part {xcu250-figd2104-2L-e}
create_clock -period 3.333 -name default
if {[lsearch $steps csim] >= 0} { csim_design }
if {[lsearch $steps csynth] >= 0 || [lsearch $steps cosim] >= 0 || [lsearch $steps export] >= 0} { csynth_design }
if {[lsearch $steps cosim] >= 0} { cosim_design -rtl verilog }
if {[lsearch $steps export] >= 0} { export_design -format xo -output ./sf_top.xo }
exit
