# 050_faults_at_scale.pl again, with the worker's HTTP client on a thread of its own
# (s2s_tracking.http_thread = on): the same bound on duplicates and no loss, the worker
# killed at random moments while the thread has requests in flight and the receiver flaps.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";

# loaded now, not by the file run below: their INIT blocks must run at this file's start
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use S2S::Node;

$ENV{S2S_HTTP_THREAD} = 'on';
# the ten kills fall in the first 40 s (about 12,000 sent); what follows is the Python
# receiver's pace: a smaller backlog keeps every kill and saves two minutes
$ENV{S2S_FAULTS_N} //= 25000;
my $file = "$FindBin::RealBin/050_faults_at_scale.pl";
do $file;
die "$file: $@" if $@;
