#!/bin/sh
# Writes this pod's redis.conf and sentinel.conf into /run/redis (Sentinel rewrites its file, so the
# ConfigMap's copy is only the start). The master is the one the running sentinels name; when none
# answers (the first start of the set), usher-redis-0.
set -eu
self="$(hostname).usher-redis"
master=""
for i in 0 1 2; do
  peer="usher-redis-$i.usher-redis"
  [ "$peer" = "$self" ] && continue
  answer="$(timeout 3 redis-cli -h "$peer" -p 26379 --raw sentinel get-master-addr-by-name usher-master 2>/dev/null | head -n 1 || true)"
  if [ -n "$answer" ]; then
    master="$answer"
    break
  fi
done
[ -n "$master" ] || master="usher-redis-0.usher-redis"
echo "usher-redis: this pod is $self, the master is $master"

{
  cat /config/redis.conf
  echo "replica-announce-ip $self"
  [ "$master" = "$self" ] || echo "replicaof $master 6379"
} >/run/redis/redis.conf

{
  cat /config/sentinel.conf
  echo "sentinel announce-ip $self"
  echo "sentinel monitor usher-master $master 6379 2"
  echo "sentinel down-after-milliseconds usher-master 5000"
  echo "sentinel failover-timeout usher-master 60000"
  echo "sentinel parallel-syncs usher-master 1"
} >/run/redis/sentinel.conf
