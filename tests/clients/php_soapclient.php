<?php
// PHP's SoapClient, as PHP users of the real service call it, against the simulator's WSDL.
$wsdl = $argv[1];
$c = new SoapClient($wsdl, ['trace' => 1, 'cache_wsdl' => WSDL_CACHE_NONE]);
$r = $c->GetCredit(['userName' => 'demo', 'password' => 'demo']);
var_dump($r->GetCreditResult);
$r = $c->SendSMS(['userName' => 'demo', 'password' => 'demo', 'fromNumber' => '10002188',
  'toNumbers' => ['09121234567', '09351234567'], 'messageContent' => 'سلام', 'isFlash' => false,
  'recId' => [], 'status' => '']);
var_dump($r->SendSMSResult, $r->recId, bin2hex($r->status));
$r = $c->SendBatchSms(['userName' => 'demo', 'password' => 'demo', 'fromNumber' => '50001234',
  'toNumbers' => ['09121234567'], 'messageContent' => 'hi', 'isFlash' => false]);
var_dump($r->SendBatchSmsResult, $r->batchSmsId);
$r = $c->GetBatchDelivery(['userName' => 'demo', 'password' => 'demo', 'batchSmsId' => $r->batchSmsId, 'index' => 1, 'count' => 100]);
var_dump($r->GetBatchDeliveryResult, $r->numbers, $r->deliveryStatus);
$r = $c->GetMessages(['userName' => 'demo', 'password' => 'demo', 'messageType' => 2, 'fromNumbers' => [], 'index' => 1, 'count' => 2]);
var_dump($r->GetMessagesResult->MessageInfo[0]->MessageId, $r->GetMessagesResult->MessageInfo[0]->Content, $r->GetMessagesResult->MessageInfo[0]->SendMethod);
$r = $c->GetInboxCount(['userName' => 'demo', 'password' => 'demo', 'isRead' => false]);
var_dump($r->GetInboxCountResult);
$r = $c->GetDelivery(['userName' => 'demo', 'password' => 'demo', 'recId' => 5]);
var_dump($r->GetDeliveryResult);
