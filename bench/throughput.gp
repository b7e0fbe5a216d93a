# bench/throughput.gp: the throughput chart of bench/README.md (gnuplot).
#   gnuplot -e "datafile='bench/out/throughput.dat'; outfile='bench/out/throughput.png'; servers=2" bench/throughput.gp
# datafile (written by bench/report.lua): one block per server (fixed-response nginx,
# local server), rows "case" wrk raw lua js in requests/s (medians), 0 when not measured;
# servers: how many blocks there are (1 when the local server was skipped).
if (!exists("datafile")) datafile = 'bench/out/throughput.dat'
if (!exists("outfile")) outfile = 'bench/out/throughput.png'

set terminal pngcairo size 1400,900 font "DejaVu Sans,12" noenhanced
set output outfile
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set ylabel "requests / s (median)"
set yrange [0:*]
set xrange [-0.6:5.6]
set format y "%.0f"
set key top right box opaque
set xtics nomirror
set ytics nomirror

if (!exists("servers")) servers = 2
set multiplot layout servers,1 title "lua-stream throughput per client (same machine, same run; x32 = 32 in flight)"
set title "fixed-response nginx (client-bound)"
plot datafile index 0 using 2:xtic(1) title "wrk (HTTP limit)" lc rgb "#9e9e9e", \
     '' index 0 using 3 title "raw libcurl" lc rgb "#4c72b0", \
     '' index 0 using 4 title "lua-stream" lc rgb "#dd8452", \
     '' index 0 using 5 title "getstream JS 8.x" lc rgb "#55a868"
if (servers > 1) {
  set title "local Stream-compatible server (nginx + Lua)"
  plot datafile index 1 using 2:xtic(1) title "wrk (HTTP limit)" lc rgb "#9e9e9e", \
       '' index 1 using 3 title "raw libcurl" lc rgb "#4c72b0", \
       '' index 1 using 4 title "lua-stream" lc rgb "#dd8452", \
       '' index 1 using 5 title "getstream JS 8.x" lc rgb "#55a868"
}
unset multiplot
